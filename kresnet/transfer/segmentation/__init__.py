"""Semantic segmentation on kresnet backbones: FCN, ADE20K/VOC/folder readers, pixAcc/mIoU, `kresnet transfer segment`."""
