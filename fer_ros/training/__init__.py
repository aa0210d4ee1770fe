"""Training, hardware-aware architecture search and export of the FER CNNs.

Needs the ``[train]`` extra (PyTorch, scikit-learn, Optuna, tqdm); the runtime nodes do
not import anything from here.
"""
