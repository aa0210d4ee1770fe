"""fer_ros: real-time facial expression recognition for social robots on ROS 2."""
