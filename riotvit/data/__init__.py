"""Data for training and prediction: metadata scalers, band normalisation, batches, augmentation."""
