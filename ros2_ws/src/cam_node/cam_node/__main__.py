"""``python -m cam_node [--ros-args ...]``: the same entry point as the ``cam_node`` executable."""

from cam_node.node import main

if __name__ == "__main__":
    main()
