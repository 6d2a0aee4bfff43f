"""The Flax examples' CNN on Fashion-MNIST (Debian's dataset-fashion-mnist).

    python train.py --config=configs/fashion_mnist_cnn.py
    python train.py --config=configs/fashion_mnist_cnn.py --config.model.activation=maxout

Conv 32 3x3 -> act -> avg-pool -> Conv 64 3x3 -> act -> avg-pool -> Dense
256 -> act -> Dense 10; ReLU; AdamW with a cosine schedule, batch 128, 20
epochs (9,360 steps); the 10,000 test images are the eval split.

Expected (seed 0, measured on a 2-core CPU): 92.8% test accuracy (eval
loss 0.227, train accuracy 0.969), 86% after the first epoch and 92% from
epoch 10 on. Training took 331 s (about 3,800 images/s), the whole command
5 min 37 s. SCALARS has the per-class test accuracy
(`eval/class_accuracy/Shirt` is the hardest), IMAGES the confusion matrix
and misclassified test images each epoch, PROJECTOR the 256 features of
1,000 test images with their thumbnails.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.batch_size = 128
    steps_per_epoch = 60_000 // config.batch_size  # 468
    config.num_steps = 20 * steps_per_epoch
    config.log_every = 100
    config.eval_every = steps_per_epoch  # once per epoch
    config.picture_every = steps_per_epoch
    config.checkpoint_every = 5 * steps_per_epoch
    config.data.name = "fashion_mnist"
    config.model.name = "cnn"
    config.model.activation = "relu"
    config.loss = "cross_entropy"
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 0.001
    config.optimizer.schedule = "cosine"
    config.optimizer.weight_decay = 0.0001
    return config
