"""deepfolder: research over a local folder, with citations a reader can check."""

__version__ = "0.1.0"
