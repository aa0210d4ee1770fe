"""The ROS-free bottom layer: model cards, preprocessing, spike coding, tracking, frame
sources, statistics, profiles and the figure and option types the layers above share.
Nothing here (or in snn, power, backends) may import rclpy or a ROS message package."""
