"""The run engine shared by classification, detection and segmentation: run folder, checkpoints, fit."""
