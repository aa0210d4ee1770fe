"""The paper's comparison in one command: accuracy, latency, power and energy per profile.

``fer_ros_compare`` (or ``python -m fer_ros.compare``) runs every profile in config/
through the backend, spike encoder and power source the inference node would build from
it, on the held-out faces of each model card, next to the model cards' recorded figures,
the Loihi grayscale/Canny ablation, two pretrained peer models and the figures Smith et
al. (arXiv 2403.08792) report. It writes ``results.md``, ``results.csv`` and PNG plots.

ROS-free: only the optional ``--graph`` measurement imports rclpy (lazily).
"""
