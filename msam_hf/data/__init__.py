"""Video-caption datasets: readers for every supported layout, statistics, Hub export and the training Dataset."""

from .hub_dataset import DatasetSource
from .hub_dataset import build_dataset_card
from .hub_dataset import export_hub_dataset
from .hub_dataset import push_dataset_folder
from .readers import LoadReport
from .readers import VideoTextRecord
from .readers import VideoTextSource
from .readers import detect_layout
from .readers import load_video_text_dataset
from .readers import read_caption_pickle
from .readers import read_video_text_source
from .readers import video_text_features
from .stats import dataset_statistics
from .stats import format_statistics
from .torch_dataset import VideoTextCollator
from .torch_dataset import VideoTextDataset

__all__ = [
    "DatasetSource",
    "LoadReport",
    "VideoTextCollator",
    "VideoTextDataset",
    "VideoTextRecord",
    "VideoTextSource",
    "build_dataset_card",
    "dataset_statistics",
    "detect_layout",
    "export_hub_dataset",
    "format_statistics",
    "load_video_text_dataset",
    "push_dataset_folder",
    "read_caption_pickle",
    "read_video_text_source",
    "video_text_features",
]
