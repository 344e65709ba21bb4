"""Data for t2v: folders of captioned videos (any size, fps and length) for training."""

from .video_folder import VideoFolderDataset, collate_long

__all__ = ["VideoFolderDataset", "collate_long"]
