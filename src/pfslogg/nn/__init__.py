"""Neural networks for log g (Track A): one training engine, one file per network.

* :mod:`.engine` -- the training loop every network shares (AdamW, warm-up + cosine, clipping,
  early stopping on validation R^2, fresh noise per batch, checkpoints, SIGTERM -> save and exit);
* :mod:`.data` -- training batches streamed from the HDF5 data set through a torch ``DataLoader``;
* :mod:`.models` -- input/label standardisation, MLP, MLP with a linear shortcut, 1D CNN;
* :mod:`.vit` -- the spectral Vision Transformer (nanoGPT style, one file);
* :mod:`.attention` -- attention maps and gradient saliency of fitted networks, per pixel.

Importing this package imports torch (seconds); :mod:`pfslogg.estimators.neural` imports it only
when a neural estimator is built, fitted or loaded.
"""
