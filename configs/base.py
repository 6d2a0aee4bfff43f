"""Fields every experiment has, with their defaults. Not a recipe itself.

Each config file in this folder imports this one and changes only what
differs (see configs/xor.py). Every field can be overridden on the command
line: `--config.optimizer.learning_rate=0.5`, `--config.model.hidden_sizes='(8,8)'`,
and swept: `--config.sweep.optimizer.learning_rate='(0.01,0.1,1.0)'`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # initialisation and minibatch order
    config.num_seeds = 1  # > 1: train seeds seed..seed+N-1 at once, vmapped (sweeps.py)
    config.max_member_runs = 256  # a sweep of more members writes only its aggregates
    config.best_metric = "eval/loss"  # a sweep's (best) point: lowest loss, highest accuracy
    config.members_per_program = 0  # members per compiled call, in turn; 0 = what memory holds
    config.num_steps = 1000  # optimizer updates in the whole run
    config.split_step = -1  # >= 0: seeds two by two are one net split here onto two data orders
    config.batch_size = 0  # examples per step, reshuffled every epoch; 0 = all
    config.eval_batch_size = 1000  # examples per evaluation batch (memory, not results)
    config.log_every = 100  # steps between train scalars + histograms
    config.eval_every = 100  # steps between evaluations on the eval split
    config.target_eval_loss = 0.0  # > 0: steps to target, the first eval at or below it
    config.picture_every = 500  # steps between pictures (decision boundaries)
    config.checkpoint_every = 1000  # steps between checkpoints (and at the end)
    config.keep_checkpoints = 3  # newest checkpoints kept on disk
    config.layer_stats = False  # log each hidden layer's dead/saturated units
    config.embedding_examples = 1000  # eval examples in EMBEDDINGS at the end; 0 = none

    # Measurements of how the net learns, off by default (they cost time).
    config.probes = ml_collections.ConfigDict()
    config.probes.sharpness = False  # train/sharpness: the loss Hessian's top eigenvalue
    config.probes.sharpness_iterations = 20  # Lanczos steps (Hessian-vector products)
    config.probes.sharpness_every = 0  # steps between measurements; 0 = auto, <= ~10% of the time
    config.probes.spectrum = False  # train/hessian/*: top eigenvalues, trace; views/hessian_density
    config.probes.spectrum_top_k = 5  # train/hessian/eigenvalue_1..k, the largest first
    config.probes.spectrum_iterations = 30  # Lanczos steps (Hessian-vector products) per start
    config.probes.trace_samples = 10  # Hutchinson's probes for train/hessian/trace (>= 2)
    config.probes.density_starts = 4  # random Lanczos starts averaged into the density
    config.probes.spectrum_every = 0  # steps between measurements; 0 = auto, <= ~10% of the time
    config.probes.gradient_noise = False  # train/gradient_noise/*: noise scale B_simple, layer SNRs
    config.probes.gradient_noise_every = 0  # steps between measurements; 0 = auto, <= ~10%
    config.probes.examples = 1000  # the probes' loss: on the first N train (eval) examples; 0 = all
    config.probes.connectivity = False  # at the end: the line between seeds, two by two
    config.probes.connectivity_points = 25  # points on that line, ends included
    config.probes.landscape = False  # at the end: IMAGES views/landscape/line and /plane
    config.probes.landscape_resolution = 41  # points along the line; the plane's grid side
    config.probes.landscape_span = 1.0  # the plane: -span..span along each direction
    config.probes.landscape_directions = "random"  # the plane's: filter-normalised, or "path" (PCA)

    config.data = ml_collections.ConfigDict()
    config.data.name = "xor"  # a key of data.DATASETS
    config.data.seed = 0  # draws generated data (apart from config.seed)
    config.data.num_train = 200  # generated sets: training points
    config.data.num_eval = 200  # generated sets: held-out points
    config.data.noise = 0.0  # generated sets: Gaussian noise std
    config.data.features = ("x1", "x2")  # 2-D sets: what the MLP sees (nets/features.py)
    config.data.num_classes = 2  # gaussians, spiral: classes (a blob or arm each)
    config.data.true_w = (2.0,)  # `linear`: the W that makes y (one per input)
    config.data.true_b = 0.5  # `linear`: the b that makes y
    config.data.data_dir = ""  # image sets: folder of the IDX files ("" = default)
    config.data.num_validation = 0  # image sets: train images held out as eval split
    config.data.train_subset = 0  # image sets: train on the first N train images; 0 = all
    config.data.path = ""  # csv: your data file (data/csv_file.py has the format)
    config.data.eval_path = ""  # csv: a file of eval rows ("" = hold out num_eval rows)
    config.data.task = "classification"  # csv: the label is a class, or a regression target
    config.data.standardize = True  # csv: features scaled to mean 0, std 1 (train rows')

    config.model = ml_collections.ConfigDict()
    config.model.name = "mlp"  # a key of nets.MODELS
    config.model.hidden_sizes = (4,)  # width of each hidden layer
    config.model.activation = "relu"  # a key of nets.ACTIVATIONS
    config.model.leaky_slope = 0.01  # leaky_relu's slope for x < 0; maxout's init
    config.model.dropout = 0.0  # mlp, cnn: rate hidden outputs are zeroed in training
    config.model.maxout_pieces = 2  # k, the lines per maxout unit
    config.model.step_theta = 0.0  # step: threshold
    config.model.step_gamma1 = 1.0  # step: output where x >= theta
    config.model.step_gamma2 = 0.0  # step: output where x < theta
    config.model.straight_through = False  # step: backprop through a ramp

    # Added to the loss, over the weights (kernels; not biases): l1 * sum |w|
    # + l2 * sum w^2 / 2, logged as train/regularization beside train/loss.
    config.regularization = ml_collections.ConfigDict()
    config.regularization.l1 = 0.0  # drives useless weights to exactly 0
    config.regularization.l2 = 0.0  # shrinks every weight towards 0 (weight decay)

    config.loss = "bce"  # a key of losses.LOSSES
    config.loss_power = 2.0  # the exponent p of the `lp` loss

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "sgd"  # a key of optimizers.OPTIMIZERS
    config.optimizer.learning_rate = 0.1  # peak learning rate
    config.optimizer.schedule = "constant"  # constant, cosine or linear decay
    config.optimizer.warmup_steps = 0  # linear warm-up from 0 to the peak
    config.optimizer.momentum = 0.9  # momentum, nesterov, rmsprop
    config.optimizer.b1 = 0.9  # adam(w): first-moment decay
    config.optimizer.b2 = 0.999  # adam(w): second-moment decay
    config.optimizer.weight_decay = 1e-4  # adamw: decoupled weight decay
    config.optimizer.grad_clip_norm = 0.0  # clip the global grad norm; 0 = off

    # Values to sweep, one tuple per swept field (sweeps.py), e.g.
    # --config.sweep.optimizer.learning_rate='(0.01, 0.1, 1.0)'. None = not swept.
    config.sweep = sweep_section(config)
    return config


def sweep_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A section shaped like `config`, every field None: what a sweep may set."""
    section = ml_collections.ConfigDict()
    for key, value in config.items():
        if key in ("seed", "num_seeds"):  # seeds are swept by num_seeds
            continue
        if isinstance(value, ml_collections.ConfigDict):
            section[key] = sweep_section(value)
        else:  # an `object` field takes a tuple of any type from the command line
            section[key] = ml_collections.FieldReference(None, field_type=object)
    return section
