"""Markdown tables of every node's parameters, from the nodes' own Param lists.

python -m fer_ros.bringup.parameter_docs   # paste into README.md; a test keeps them equal
"""

from __future__ import annotations

from importlib import import_module

from fer_ros.core.profiles import NODE_TYPES


def parameter_tables() -> str:
    blocks = []
    for name, node_type in NODE_TYPES.items():
        node_class = getattr(import_module(node_type.module), node_type.class_name)
        rows = [
            f"**{name}** (`{node_type.executable}`)",
            "",
            "| parameter | default | meaning |",
            "|---|---|---|",
        ]
        for p in node_class.parameters:
            choices = f" One of: {', '.join(f'`{c}`' for c in p.choices)}." if p.choices else ""
            meaning = f"{p.description}.{choices}".replace("|", "\\|")
            rows.append(f"| `{p.name}` | `{p.default!r}` | {meaning} |")
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


if __name__ == "__main__":
    print(parameter_tables(), end="")
