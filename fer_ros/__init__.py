"""fer_ros: real-time facial expression recognition for social robots on ROS 2.

Layers, each importing only those before it: :mod:`.core` (ROS-free basics) <
:mod:`.snn`, :mod:`.power` < :mod:`.backends` < :mod:`.nodes` (ROS 2) < :mod:`.bringup`.
Beside them: :mod:`.training` (uses core, snn, backends) and :mod:`.compare` (the paper's
comparison, everything below the nodes). ``test/test_layers.py`` keeps it so.
"""
