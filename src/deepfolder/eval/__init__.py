"""Evaluations built into the product (``deepfolder eval …``)."""
