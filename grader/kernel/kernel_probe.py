"""Runs INSIDE the student's kernel, from the grader's first cell: a record of what the run did, for diagnosis.

Facts that the values alone cannot show:

- the weights each parameter had when its module first ran forward: a model's initial weights, so the
  grader can tell whether it was built right after ``torch.manual_seed(s)`` (a deep copy keeps its
  original's, and so does a new model loaded with a state_dict() taken of it, copied or through a file);
  a model that ran and is then re-initialised by torch.nn.init (reset_parameters()), or given a fresh
  model's weights, starts again from those; and whether load_state_dict later put its start back after its
  last optimizer step;
- at each scheduler.step() call, how often its optimizer had stepped, and how often when the scheduler was
  made, so the order of the two is measured;
- how many times each optimizer stepped, so the grader can count epochs times batches instead of
  trusting an exported loader; and how many optimizer steps each parameter took part in (with a
  gradient), so a model's own training is counted whichever optimizers trained it (a deep copy keeps
  its original's count at the time of the copy);
- for a parameter's first ``JUDGED`` steps after its first, whether the gradient the step used still
  held the one the step before had used (a loop that never clears its gradients): measured by two
  gradient hooks on the parameter, at each backward pass that adds to ``.grad``, by the values in
  ``.grad`` before it (None or all zeros: cleared, however the loop cleared them), and removed after
  (a gradient from torch.autograd.grad, assigned to ``.grad``, adds nothing and is not judged);
- the learning rates a parameter was stepped at, and its param group's other settings (weight decay,
  betas...), so a run is judged by what its optimizer did, whichever object the notebook kept;
- the range of the values each module the data is fed to (not a layer fed by the layers before it) was fed in
  its first ``INPUT_CALLS`` calls in training mode, so inputs normalised on the way (in the training loop, say)
  show whatever the code looks like;
- how cross_entropy was called (label smoothing, probabilities for input), which other losses were
  trained with and how often the gradients were clipped, through wrappers on
  ``torch.nn.functional.cross_entropy`` and ``torch.nn.utils.clip_grad_norm_``/``clip_grad_value_``: per
  parameter, as the optimizer steps that followed them (since the last zero_grad) took them, so a model's
  record holds its own training's, not a side experiment's; run-wide for a model no optimizer stepped.

They are kept in weak tables (nothing outlives its object) by global torch hooks and by wrappers on
``Parameter.__deepcopy__``, on torch's schedulers' ``step()`` and on the functions above, installed right
after the notebook first imports torch, so a notebook without torch pays nothing. The export cell reads them (``kernel_export``)
and switches recording off first, so its own tracing records nothing. Student code can tamper with these
records like with anything in the kernel, by reaching into this module on purpose: where a check's points
rest on a record (step counts, the order of scheduler and optimizer steps), a notebook that rewrites it
can pass that check, as one that forges its exported values can pass others. Standard library and torch only.
"""

import operator
import sys
import weakref


class _ById:
    """A weak table keyed by object identity: tensors compare elementwise, so they cannot be dict keys."""

    def __init__(self):
        self._items = {}

    def get(self, obj, default=None):
        ref, value = self._items.get(id(obj), (None, default))
        return value if ref is not None and ref() is obj else default

    def set(self, obj, value):
        key = id(obj)
        held = self._items.get(key)
        if held is not None and held[0]() is obj:  # a count updated at every step: its weak reference is kept
            self._items[key] = (held[0], value)
            return
        self._items[key] = (weakref.ref(obj, lambda _, key=key: self._items.pop(key, None)), value)

    def __contains__(self, obj):
        ref = self._items.get(id(obj), (None, None))[0]
        return ref is not None and ref() is obj

    def discard(self, obj):
        if obj in self:
            del self._items[id(obj)]

    def items(self):
        """(object, value) for each object still alive."""
        for ref, value in list(self._items.values()):
            obj = ref()
            if obj is not None:
                yield obj, value


INITIAL = _ById()  # parameter -> a copy of its values at its module's first forward pass
LOADED = _ById()  # parameter -> True: given weights by load_state_dict before it first ran (no start recorded)
LOADED_AT = _ById()  # such a parameter -> its values at its first forward pass: what it trained from, if it did
# parameter -> whether load_state_dict put its recorded start back after it had stepped (a best state never replaced),
# with no step since: weights that equal their start then did move, and were reset
RESTORED = _ById()
# Each recorded parameter's values when its model's state_dict() was taken, by their fingerprint: (which call, its
# recorded start, a copy of its step record), for the model those values are loaded into later (a checkpoint).
SNAPSHOTS: dict = {}
MAX_SNAPSHOTS = 16384  # the oldest go first: a best state is most often among the latest
# The fingerprints of weights as their model was built, as state_dict() saw them (a model that never ran forward nor
# stepped): a model loaded with them starts from a fresh build, wherever it had been before.
FRESH: dict = {}
_STATE_DICT_CALLS = [0, 0]  # [depth of nested state_dict() calls, calls begun at depth 0]
STEPS = _ById()  # optimizer -> how many times it stepped
PARAMETER_STEPS = _ById()  # parameter -> its _Record
STALE, CLEARED, CARRIED = "stale", "cleared", "carried"  # .grad still the last step's; cleared; added to it
JUDGED = 50  # steps judged per parameter, after which its gradient hooks are removed
SCHEDULER_CALLS = _ById()  # scheduler -> its optimizer's steps begun at each of the notebook's step() calls
# scheduler -> its optimizer's steps begun when it was made: a step taken before is not one the schedule came after
SCHEDULER_MADE_AT = _ById()
# optimizer -> steps begun (a pre-hook): a scheduler stepped from the optimizer's own post-hook comes after its step,
# which STEPS (a post-hook, as torch's optimizers read the gradients only inside step(closure)) counts only later
STARTED = _ById()
_IN_SCHEDULER_STEP = [0]  # depth: a scheduler's step() that calls another's (super().step()) is one call
_MAKING: set = set()  # ids of the schedulers whose constructor is stepping them once (not the notebook's call)
MAX_CALLS = 1000
_SEEN = _ById()  # modules whose first forward pass is recorded
RECORDING = [True]  # the export cell turns this off before it traces anything
# module -> [its training-mode calls noted, the lowest and highest value of their first input, that input's shape
#            less the batch dimension, at the first call, [lowest, highest] of each call, (sum, sum of squares,
#            position-weighted sum) of each row of those calls]
INPUTS = _ById()
INPUT_CALLS = 20  # calls noted per module: the first batches of its training
INPUT_ROWS = 512  # rows of those calls noted per module, each as ``row_signatures`` says (read at each watched save)
# module -> [its latest training-mode call's input (its first row copied only if kept), the run's optimizer steps at
#            that call, its training calls an optimizer step followed, the stride they are kept at, the rows kept
#            (signed at the export, for the models exported only)]:
# which points it was trained on through the whole run, where the first calls (INPUTS) show only the start. A call is
# one a step followed where a step came before the module's next call: an evaluation run in training mode is not.
STEPPED_ON = _ById()
STEPPED_ROWS = 256  # kept per module; past that, every other one goes and the stride doubles
_TENSOR: list = []  # torch.Tensor, once torch is imported
_GRAD: list = []  # torch.is_grad_enabled, once torch is imported: a call without it is no training step's


def _training() -> bool:
    """Whether autograd records now: a forward pass or a loss of a training step, not an evaluation or a metric."""
    return bool(_GRAD) and _GRAD[0]()
# The notebook's losses and gradient clipping, run-wide (PENDING and each _Record.losses hold them per step and per
# parameter): cross_entropy calls, the label_smoothing values they were
# given, those (of the first INPUT_CALLS) whose input rows were probabilities (a softmax before a loss that applies
# its own) or whose targets were probabilities other than one-hot rows, the clip_grad_norm_/clip_grad_value_ calls
# that changed a gradient, the calls of other losses (OTHER_LOSSES), by name, and nll_loss's calls with those (of the
# first INPUT_CALLS) whose rows were not log-probabilities.
def _no_losses() -> dict:
    return {"cross_entropy": 0, "label_smoothing": set(), "probabilities": 0, "clipped": 0, "soft_targets": 0,
            "others": {}, "nll_loss": 0, "nll_not_log_probabilities": 0}


LOSSES = _no_losses()
# The same, since the last optimizer step: each step hands it to the records of the parameters it stepped, so a model's
# record holds the losses of its own training, not those of another experiment of the notebook's.
PENDING = _no_losses()
# The latest cross_entropy of a training step (its result, detached), which the next optimizer step hands to the records
# of the parameters it stepped: what each step's loss was, for a per-epoch loss record read against them.
STEP_LOSS: list = [None]
MAX_STEP_LOSSES = 12000  # per parameter: the first steps' (a 5-epoch MNIST run takes 4,690)
SAMPLED_STEPS = 10  # beyond the run's first INPUT_CALLS calls, the first of every 10th step's is looked at too
_ALL_STEPS = [0]  # optimizer steps of the run, any optimizer


def _noting(key: str, value=1) -> None:
    """Add to the record of the step under way, and to the run-wide one unless the grader's own export runs (its
    runs of the student's function train models too: their steps take their losses; the run's record is the
    notebook's)."""
    for record in (LOSSES, PENDING) if RECORDING[0] else (PENDING,):
        if key == "label_smoothing":
            record[key].add(value)
        elif key == "others":
            record[key][value] = record[key].get(value, 0) + 1
        else:
            record[key] += value


def _looked_at(key: str) -> bool:
    """Whether this call is one whose inputs are looked at: the run's first INPUT_CALLS, and then the first call of
    every SAMPLED_STEPS-th optimizer step (a model trained late in the run is looked at too)."""
    return LOSSES[key] <= INPUT_CALLS or (PENDING[key] == 1 and _ALL_STEPS[0] % SAMPLED_STEPS == 0)


def _clearing_pending(zero_grad):
    """``zero_grad`` that also forgets the losses noted since the last step: a training step starts here, and a loss
    computed before it (a metric, another experiment's) trained nothing that this step updates."""
    def cleared(self, *args, **kwargs):
        PENDING.update(_no_losses())
        return zero_grad(self, *args, **kwargs)

    cleared.__wrapped__ = zero_grad
    return cleared


def _merged(into, losses: dict, combine=operator.add) -> dict:
    """``into`` (a record of losses, or None) with ``losses`` added: counts combined by ``combine`` (summed over
    steps; ``max`` over parameters stepped together, which each saw the same calls), label smoothings united."""
    merged = _no_losses() if into is None else into
    for key, value in losses.items():
        if key == "label_smoothing":
            merged[key] |= value
        elif key == "others":
            for name, n in value.items():
                merged[key][name] = combine(merged[key].get(name, 0), n)
        else:
            merged[key] = combine(merged[key], value)
    return merged


def _first_forward(module, args):
    if not RECORDING[0]:
        return None
    # Only inputs the data is fed as: one with an autograd history is a layer's output, fed by the layers before it,
    # and no model's record is read from its layers' (noting them cost a small model's training a seventh of its time).
    if args and module.training and _training() and getattr(args[0], "grad_fn", None) is None:
        _note_input(module, args[0])
        _note_stepped_on(module, args[0])
    if module in _SEEN:
        return None
    try:
        _SEEN.set(module, True)
        for parameter in module._parameters.values():
            if parameter is not None and parameter not in INITIAL and parameter not in LOADED:
                INITIAL.set(parameter, parameter.detach().to("cpu", copy=True))
            elif parameter is not None and parameter in LOADED and parameter not in LOADED_AT:
                LOADED_AT.set(parameter, parameter.detach().to("cpu", copy=True))
    except Exception:  # noqa: BLE001 - a record is a nicety; the student's run must never fail because of it
        pass
    return None


def signature_rows(x):
    """(sum, sum of squares, position-weighted sum) of each row of a batch, as an (n, 3) float64 tensor: which points a
    model was fed whatever their order, their shape (an image or its flattened row) or their float type; the
    weighted sum tells a flipped, shifted or transposed image from its original. The grader computes the same for its
    points.

    The weights are spread over [-1, 1] in no order (the fractional parts of multiples of the golden ratio): weights
    that grow with the position give a centred digit and its mirror image or transpose nearly the same sum.
    """
    rows = x.detach().cpu().double().reshape(len(x), -1)
    weights = 2 * (rows.new_ones(rows.shape[1]).cumsum(0) * 0.6180339887498949).frac() - 1
    out = rows.new_empty((len(rows), 3))
    out[:, 0], out[:, 1], out[:, 2] = rows.sum(1), (rows * rows).sum(1), rows @ weights
    return out


def row_signatures(x) -> list:
    """``signature_rows`` as the record keeps them: a tuple of floats per row."""
    return [tuple(row) for row in signature_rows(x).tolist()]


def _note_input(module, x) -> None:
    """The range of what a module was fed in training: pixels normalised on the way (in the loop, say) show there."""
    try:
        seen = INPUTS.get(module)
        if seen is None:
            seen = [0, None, None, None, [], []]
            INPUTS.set(module, seen)
        if seen[0] >= INPUT_CALLS or not _TENSOR or not isinstance(x, _TENSOR[0]) or not x.is_floating_point() \
                or not x.numel():
            return
        low, high = float(x.min()), float(x.max())
        if seen[3] is None:
            seen[3] = [int(n) for n in x.shape[1:]]
        seen[0] += 1
        seen[4].append([low, high])  # one stray call (a shape check on torch.randn, say) is told from the training
        seen[1] = low if seen[1] is None else min(seen[1], low)
        seen[2] = high if seen[2] is None else max(seen[2], high)
        if x.dim() >= 2 and len(seen[5]) < INPUT_ROWS:  # which points it learned from, whatever their order
            seen[5].extend(row_signatures(x.detach()[: INPUT_ROWS - len(seen[5])]))
    except Exception:  # noqa: BLE001
        pass


def _note_stepped_on(module, x) -> None:
    """Keep ``module``'s previous training call's first row where an optimizer stepped since, and hold this one's."""
    try:
        if not _TENSOR or not isinstance(x, _TENSOR[0]) or x.dim() < 2 or not len(x):
            return
        seen = STEPPED_ON.get(module)
        if seen is None:
            seen = [None, 0, 0, 1, []]
            STEPPED_ON.set(module, seen)
        _keep_if_stepped(seen)
        seen[0], seen[1] = x, _ALL_STEPS[0]  # copied only if kept: most calls are not
    except Exception:  # noqa: BLE001
        pass


def _keep_if_stepped(seen: list) -> None:
    """Copy the held call's first row into the record where a step came after the call, at the record's stride."""
    if seen[0] is None or _ALL_STEPS[0] <= seen[1]:
        return
    row, seen[0] = seen[0], None
    if seen[2] % seen[3] == 0:
        seen[4].append(row.detach()[:1].reshape(1, -1).to("cpu", copy=True))
        if len(seen[4]) >= STEPPED_ROWS:
            del seen[4][1::2]
            seen[3] *= 2
    seen[2] += 1


def _noted_loss(cross_entropy):
    """``torch.nn.functional.cross_entropy`` (which CrossEntropyLoss calls) noting how it was called."""
    def noted(input, target, *args, **kwargs):
        try:
            _noting("cross_entropy")
            smoothing = kwargs.get("label_smoothing", args[5] if len(args) > 5 else 0.0)
            if smoothing:
                _noting("label_smoothing", float(smoothing))
            if _looked_at("cross_entropy") and input.dim() == 2 and input.shape[1] > 1 and \
                    input.is_floating_point() and input.requires_grad and _training():
                rows = input.detach()
                if float(rows.min()) >= 0 and float(rows.max()) <= 1 and \
                        float((rows.sum(1) - 1).abs().max()) < 1e-3:
                    _noting("probabilities")
                # Class probabilities as targets: one-hot rows are the labels themselves; others are softened.
                if isinstance(target, _TENSOR[0]) and target.is_floating_point() and target.shape == input.shape:
                    hot = target.detach()
                    if not bool(((hot == 0) | (hot == 1)).all()):
                        _noting("soft_targets")
        except Exception:  # noqa: BLE001
            pass
        result = cross_entropy(input, target, *args, **kwargs)
        try:
            if _training() and result.requires_grad and result.dim() == 0:
                STEP_LOSS[0] = result.detach()
        except Exception:  # noqa: BLE001
            pass
        return result

    noted.__wrapped__ = cross_entropy
    return noted


# Losses other than cross_entropy (and nll_loss, half of it) that a classifier is sometimes trained with.
OTHER_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                "binary_cross_entropy_with_logits", "kl_div", "multi_margin_loss", "soft_margin_loss",
                "multilabel_soft_margin_loss", "multilabel_margin_loss", "poisson_nll_loss", "hinge_embedding_loss")


def _counted_loss(loss, name: str):
    """A loss of ``torch.nn.functional`` (which its nn.Module form calls) counting its calls by name."""
    def counted(*args, **kwargs):
        result = loss(*args, **kwargs)
        try:  # counted as backward() runs through it: a metric logged with .item() is no training loss
            if getattr(result, "requires_grad", False) and _training():
                result.register_hook(lambda grad: _backward_through(name))
        except Exception:  # noqa: BLE001
            pass
        return result

    counted.__wrapped__ = loss
    return counted


def _backward_through(name: str) -> None:
    _noting("others", name)


def _noted_nll(nll_loss):
    """``torch.nn.functional.nll_loss`` (NLLLoss's) counting, of its first calls, those given rows that are not
    log-probabilities: without a log_softmax before it, what it computes is no cross-entropy."""
    def noted(input, *args, **kwargs):
        try:
            _noting("nll_loss")
            if _looked_at("nll_loss") and input.dim() == 2 and input.is_floating_point() and \
                    input.requires_grad and _training():
                if float((input.detach().exp().sum(1) - 1).abs().max()) > 1e-3:
                    _noting("nll_not_log_probabilities")
        except Exception:  # noqa: BLE001
            pass
        return nll_loss(input, *args, **kwargs)

    noted.__wrapped__ = nll_loss
    return noted


def _noted_clip(clip, by_norm: bool):
    """``clip_grad_norm_``/``clip_grad_value_`` counting the calls that changed a gradient: a bound no gradient
    reaches (clip_grad_value_(params, 1e6)) leaves the run as it was. The call itself is the student's, untouched
    but for a generator of parameters made a list first (the look below would spend it)."""
    def noted(*args, **kwargs):
        largest, bound = None, None
        try:
            given = args[0] if args else kwargs.get("parameters")
            if given is not None and not (_TENSOR and isinstance(given, _TENSOR[0])):
                given = list(given)
                args, kwargs = ((given, *args[1:]), kwargs) if args else (args, {**kwargs, "parameters": given})
            bound = float(args[1] if len(args) > 1 else kwargs["max_norm" if by_norm else "clip_value"])
            tensors = [given] if _TENSOR and isinstance(given, _TENSOR[0]) else given or []
            largest = max((float(p.grad.detach().abs().max()) for p in tensors
                           if getattr(p, "grad", None) is not None and p.grad.numel()), default=0.0)
        except Exception:  # noqa: BLE001 - the call goes ahead as the student wrote it
            pass
        result = clip(*args, **kwargs)
        try:
            if bound is not None and (float(result) > bound if by_norm else largest is not None and largest > bound):
                _noting("clipped")
        except Exception:  # noqa: BLE001
            pass
        return result

    noted.__wrapped__ = clip
    return noted


def loss_record(losses: dict | None = None) -> dict:
    """``losses`` (the run's, by default) as plain data."""
    losses = LOSSES if losses is None else losses
    return {"cross_entropy": losses["cross_entropy"], "label_smoothing": sorted(losses["label_smoothing"])[:5],
            "probabilities": losses["probabilities"], "clipped": losses["clipped"],
            "soft_targets": losses["soft_targets"], "others": dict(sorted(losses["others"].items())[:10]),
            "nll_loss": losses["nll_loss"], "nll_not_log_probabilities": losses["nll_not_log_probabilities"]}


def _starting(optimizer, args, kwargs):
    try:
        STARTED.set(optimizer, STARTED.get(optimizer, 0) + 1)
        state = optimizer.state
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                record = PARAMETER_STEPS.get(parameter)
                if record is None or parameter.grad is None:
                    continue
                fresh = (record.owner is None or record.owner() is not optimizer) and _fresh_start(parameter, record)
                # A parameter whose last optimizer kept state for it (Adam's averages, momentum) stepped by one that
                # has none: a new optimizer, made during training, starts those again (a fresh run does not).
                if record.kept and not state.get(parameter) and not fresh:
                    record.restarts += 1
    except Exception:  # noqa: BLE001
        pass


def _fresh_start(parameter, record) -> bool:
    """Another optimizer than the last steps ``parameter``: a new run, whose record starts again, where its weights
    are back at their recorded start (the initial state_dict loaded, reset_parameters() after the same seed). Weights
    set otherwise (a checkpoint resumed, a re-initialisation from another seed) cannot be told apart: they carry the
    record on."""
    back = _at_start(parameter)
    if back:
        record.stepped = record.idle = record.restarts = 0
        record.lrs = record.settings = record.losses = record.step_losses = None
        record.classes, record.step_count = set(), 0
    return back


def _new_start(parameter) -> None:
    """The parameter holds the weights of a new build (re-initialised in place by torch.nn.init, or a fresh model's
    weights loaded into it): its recorded start is these. Its step record goes on until another optimizer takes it
    over from them (``_fresh_start``): one kept from the run before carries its state, and its steps, over."""
    INITIAL.set(parameter, parameter.detach().to("cpu", copy=True))
    for table in (LOADED, LOADED_AT, RESTORED):
        table.discard(parameter)


def _reinitialising(init):
    """A ``torch.nn.init`` function (``reset_parameters()`` calls them) that gives a parameter which ran, stepped or
    was loaded before a new start (``_new_start``); a layer being built has no record yet, and is left alone."""
    def reinit(tensor, *args, **kwargs):
        result = init(tensor, *args, **kwargs)
        try:
            if RECORDING[0] and (tensor in INITIAL or tensor in PARAMETER_STEPS or tensor in LOADED):
                _new_start(tensor)
        except Exception:  # noqa: BLE001
            pass
        return result

    reinit.__wrapped__ = init
    return reinit


class _Record:
    """How optimizers stepped one parameter."""

    __slots__ = ("stepped", "idle", "classes", "cleared", "carried", "state", "pending", "hooks", "lrs", "settings",
                 "kept", "restarts", "owner", "losses", "step_losses", "step_count")

    def __init__(self):
        self.stepped = 0  # optimizer steps it took part in with a gradient
        self.idle = 0  # steps that found it without one
        self.classes = set()  # the optimizers' class names
        self.cleared = 0  # steps judged whose gradient was cleared since the step before
        self.carried = 0  # steps judged whose gradient still held the step before's
        self.state = None  # what the backward passes since its last step did: STALE, CLEARED, CARRIED; None unjudged
        self.pending = None  # whether .grad was cleared when its latest gradient began (``_before_accumulating``)
        self.hooks = None  # the gradient hooks' handles while steps are judged
        self.lrs = None  # [first, last, lowest, highest] LR it was stepped at
        self.settings = None  # its param group's other settings at its first step
        self.kept = False  # whether the optimizer of its latest step keeps state for it
        self.restarts = 0  # steps by an optimizer with no state for it, after one that kept some
        self.owner = None  # a weak reference to the optimizer of its latest step
        self.losses = None  # the losses and clipping of the steps it took (a record like LOSSES)
        # each step's cross_entropy (STEP_LOSS, a detached tensor or None), the first ones: the first step_count items
        # of a list a copy shares with its original until either steps again (a checkpoint a step is copied often)
        self.step_losses = None
        self.step_count = 0

    def copy(self) -> "_Record":
        """What a deep copy of the parameter inherits: the counts and LRs so far, not the watch on its gradient."""
        copied = _Record()
        copied.stepped, copied.idle, copied.classes = self.stepped, self.idle, set(self.classes)
        copied.cleared, copied.carried = self.cleared, self.carried
        copied.lrs, copied.settings = list(self.lrs) if self.lrs else None, self.settings
        # Not ``kept`` or ``owner``: no optimizer holds the copy yet.
        copied.restarts = self.restarts
        copied.losses = _merged(None, self.losses) if self.losses else None
        copied.step_losses, copied.step_count = self.step_losses, self.step_count
        return copied


def _plain(value):
    """A setting as plain data (numbers, strings, flags, tuples of them); None for anything else."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 8 and all(isinstance(v, (int, float)) for v in value):
        return list(value)
    try:
        return float(value)  # a 0-d tensor
    except Exception:  # noqa: BLE001
        return None


def _note_group(record: _Record, group: dict, lr) -> None:
    """The LR this step used (``lr``, the group's as ``_plain`` reads it), and the group's other settings the first
    time."""
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        return
    if record.lrs is None:
        record.lrs = [lr, lr, lr, lr]
        record.settings = {k: _plain(v) for k, v in list(group.items())[:30]
                           if k not in ("params", "lr", "initial_lr") and isinstance(k, str)}
    else:
        seen = record.lrs
        seen[1], seen[2], seen[3] = lr, min(seen[2], lr), max(seen[3], lr)


def _stepped(optimizer, args, kwargs):
    try:
        STEPS.set(optimizer, STEPS.get(optimizer, 0) + 1)
        _ALL_STEPS[0] += 1
        noted = any(PENDING.values())
        loss, STEP_LOSS[0] = STEP_LOSS[0], None
        name, owner = type(optimizer).__name__, None
        for group in optimizer.param_groups:
            lr = _plain(group.get("lr"))
            for parameter in group["params"]:
                record = PARAMETER_STEPS.get(parameter)
                if record is None:
                    record = _Record()
                    PARAMETER_STEPS.set(parameter, record)
                if parameter.grad is None:  # torch's optimizers leave a parameter without a gradient alone
                    record.idle += 1
                    continue
                record.stepped += 1
                if RESTORED.get(parameter):
                    RESTORED.set(parameter, False)
                record.classes.add(name)
                record.kept = bool(optimizer.state.get(parameter))
                if record.owner is None or record.owner() is not optimizer:
                    record.owner = owner = owner or weakref.ref(optimizer)
                _note_group(record, group, lr)
                _judge(parameter, record)
                if noted:
                    record.losses = _merged(record.losses, PENDING)
                if record.step_count < MAX_STEP_LOSSES:
                    if record.step_losses is None or len(record.step_losses) != record.step_count:
                        record.step_losses = (record.step_losses or [])[:record.step_count]  # its own from here
                    record.step_losses.append(loss)
                    record.step_count += 1
    except Exception:  # noqa: BLE001
        pass
    PENDING.update(_no_losses())


def _judge(parameter, record: _Record) -> None:
    """At a step with a gradient: count what the backward passes since the step before did to ``.grad``, then watch
    the next ones (two gradient hooks, until ``JUDGED`` steps are counted)."""
    if record.state == CLEARED:
        record.cleared += 1
    elif record.state == CARRIED:
        record.carried += 1
    if record.cleared + record.carried >= JUDGED:
        for handle in record.hooks or ():
            handle.remove()
        record.hooks = record.state = None
        return
    record.state = STALE
    if record.hooks is None and parameter.requires_grad:
        ref = weakref.ref(parameter)
        record.hooks = (parameter.register_hook(_before_accumulating(ref)),
                        parameter.register_post_accumulate_grad_hook(_accumulated(ref)))


def _before_accumulating(ref):
    """A gradient is about to be computed for the parameter: note whether ``.grad`` holds anything now.

    torch.autograd.grad runs this hook too, but adds nothing to ``.grad``: only ``_accumulated`` settles it.
    """
    def before(gradient):
        try:
            parameter = ref()
            record = PARAMETER_STEPS.get(parameter) if parameter is not None else None
            if record is not None and record.state is not None:
                held = parameter.grad
                record.pending = held is None or not bool(held.any())
        except Exception:  # noqa: BLE001 - a sparse gradient, say: that pass is not judged
            pass
        return None

    return before


def _accumulated(ref):
    """A backward pass added a gradient to ``.grad``: onto a cleared one (whatever came before: a validation loss's
    backward after the step, then zero_grad), or onto the one the last step used, which carries it on."""
    def accumulated(parameter):
        try:
            record = PARAMETER_STEPS.get(parameter)
            if record is not None and record.state is not None and record.pending is not None:
                if record.pending:
                    record.state = CLEARED
                elif record.state == STALE:  # a second pass of the same step adds to its own gradient
                    record.state = CARRIED
        except Exception:  # noqa: BLE001
            pass

    return accumulated


def _recorded_step(step):
    """A scheduler class's ``step`` that notes, at each outermost call, how many steps its optimizer had begun.

    The call a scheduler makes on itself when it is made (``_initial_step``) is not one of the notebook's.
    """
    def recorded(self, *args, **kwargs):
        outer = _IN_SCHEDULER_STEP[0] == 0
        made = id(self) in _MAKING
        _IN_SCHEDULER_STEP[0] += 1
        try:
            return step(self, *args, **kwargs)
        finally:
            _IN_SCHEDULER_STEP[0] -= 1
            if outer and not made and RECORDING[0]:
                try:
                    calls = SCHEDULER_CALLS.get(self)
                    if calls is None:
                        calls = []
                        SCHEDULER_CALLS.set(self, calls)
                    if len(calls) < MAX_CALLS:
                        calls.append(STARTED.get(getattr(self, "optimizer", None), 0))
                except Exception:  # noqa: BLE001
                    pass

    recorded.__wrapped__ = step
    return recorded


def _making(initial_step):
    """``LRScheduler._initial_step``, during which the scheduler's own step() call is not recorded; after it, a
    scheduler made in the run has a record of no calls, where a deep copy or one never made here has none."""
    def making(self, *args, **kwargs):
        _MAKING.add(id(self))
        try:
            return initial_step(self, *args, **kwargs)
        finally:
            _MAKING.discard(id(self))
            try:
                if RECORDING[0] and SCHEDULER_CALLS.get(self) is None:
                    SCHEDULER_CALLS.set(self, [])
                    SCHEDULER_MADE_AT.set(self, STARTED.get(getattr(self, "optimizer", None), 0))
            except Exception:  # noqa: BLE001
                pass

    return making


def scheduler_calls(scheduler) -> list | None:
    """The steps its optimizer had begun at each of ``scheduler``'s step() calls ([] for one made in the run and never
    stepped); None when nothing was recorded (a deep copy, say)."""
    calls = SCHEDULER_CALLS.get(scheduler)
    return list(calls) if calls is not None else None


def scheduler_made_at(scheduler) -> int:
    """The steps its optimizer had begun when ``scheduler`` was made (0 where that was not recorded)."""
    return SCHEDULER_MADE_AT.get(scheduler, 0)


def _inherit_start(deepcopy):
    """``Parameter.__deepcopy__`` that hands the original's recorded start, and its steps so far, to the copy.

    A copy taken during or after training (``copy.deepcopy(model)``) first runs forward, if ever, once
    trained: its own first pass would record trained weights as its start. Where its training began is
    the original's start, and the steps that trained it are the original's until then.
    """
    def __deepcopy__(self, memo):
        result = deepcopy(self, memo)
        _hand_over(self, result)
        return result

    return __deepcopy__


def _averaging(update):
    """``AveragedModel.update_parameters`` (SWA, EMA): the average's parameters hold weights of the trained model's, so
    each takes the step record and the start of the parameter it averages, as a deep copy does."""
    def update_parameters(self, model):
        result = update(self, model)
        try:
            if RECORDING[0]:
                for mine, theirs in zip(self.module.parameters(), model.parameters()):
                    record, start = PARAMETER_STEPS.get(theirs), INITIAL.get(theirs)
                    if record is not None and record.stepped:
                        PARAMETER_STEPS.set(mine, record.copy())
                    if start is not None:
                        INITIAL.set(mine, start)
        except Exception:  # noqa: BLE001
            pass
        return result

    update_parameters.__wrapped__ = update
    return update_parameters


def _hand_over(old, new) -> None:
    """Give ``new`` the recorded start and steps of ``old``, whose copy or successor it is, unless it has its own."""
    try:
        start = INITIAL.get(old)
        if start is not None and new not in INITIAL:
            INITIAL.set(new, start)
        steps = PARAMETER_STEPS.get(old)
        if steps is not None and new not in PARAMETER_STEPS:
            PARAMETER_STEPS.set(new, steps.copy())
        if old in LOADED and new not in INITIAL and new not in LOADED:  # weights of unknown origin, as the original's
            LOADED.set(new, True)
            if old in LOADED_AT:
                LOADED_AT.set(new, LOADED_AT.get(old))
    except Exception:  # noqa: BLE001
        pass


def _fingerprint(tensor):
    """The exact values of a tensor, hashed (None where they cannot be read so): what a copy, a clone or a file
    written by torch.save and read back keeps."""
    try:
        values = tensor.detach().to("cpu").contiguous()
        return (tuple(values.shape), str(values.dtype), hash(values.numpy().tobytes()))
    except Exception:  # noqa: BLE001 - a dtype numpy lacks, say: no fingerprint, no snapshot
        return None


def _snapshotting(state_dict):
    """``Module.state_dict`` that notes what each recorded parameter of the model holds now (``SNAPSHOTS``)."""
    def snapshot(self, *args, **kwargs):
        depth = _STATE_DICT_CALLS[0]
        if depth == 0:
            _STATE_DICT_CALLS[1] += 1
        _STATE_DICT_CALLS[0] += 1
        try:
            return state_dict(self, *args, **kwargs)
        finally:
            _STATE_DICT_CALLS[0] -= 1
            try:
                if RECORDING[0]:
                    for parameter in self._parameters.values():
                        record = PARAMETER_STEPS.get(parameter) if parameter is not None else None
                        start = INITIAL.get(parameter) if parameter is not None else None
                        key = _fingerprint(parameter) if start is not None or record is not None else None
                        if key is None:
                            built = _fingerprint(parameter) if parameter is not None and parameter not in LOADED \
                                else None
                            if built is not None:
                                if built not in FRESH and len(FRESH) >= MAX_SNAPSHOTS:
                                    FRESH.pop(next(iter(FRESH)))
                                FRESH[built] = True
                            continue
                        if key not in SNAPSHOTS and len(SNAPSHOTS) >= MAX_SNAPSHOTS:
                            SNAPSHOTS.pop(next(iter(SNAPSHOTS)))
                        SNAPSHOTS[key] = (_STATE_DICT_CALLS[1], start, record.copy() if record else None)
            except Exception:  # noqa: BLE001
                pass

    snapshot.__wrapped__ = state_dict
    return snapshot


def _from_snapshot(parameters: list) -> bool:
    """Give each of ``parameters`` (new weights loaded into a model that never ran) the start and steps of the
    parameter whose values they are, as one state_dict() call saw them; False, changing nothing, where any of them
    matches none, or they come from different calls."""
    found = [SNAPSHOTS.get(_fingerprint(p)) for p in parameters]
    if not found or None in found or len({call for call, _, _ in found}) != 1:
        return False
    for parameter, (_, start, record) in zip(parameters, found):
        if start is not None:
            INITIAL.set(parameter, start)
        if record is not None:
            PARAMETER_STEPS.set(parameter, record.copy())
    return True


def _back_at_start(parameter) -> bool:
    """Whether a parameter that took optimizer steps holds its recorded start again."""
    record = PARAMETER_STEPS.get(parameter)
    return record is not None and record.stepped > 0 and _at_start(parameter)


def _at_start(parameter) -> bool:
    """Whether a parameter holds its recorded start."""
    start = INITIAL.get(parameter)
    return start is not None and start.shape == parameter.shape and _TENSOR[0].equal(parameter.detach().cpu(), start)


def _keeping_records(load_state_dict):
    """``Module.load_state_dict`` that hands each parameter it replaces (``assign=True`` puts the given tensors in
    their place) the records of the one it replaced: the model trained all the same."""
    def load(self, *args, **kwargs):
        try:
            before = dict(self.named_parameters())
            # Values of parameters that never ran: new weights loaded into them are not where the model started.
            unrun = {name: p.detach().clone() for name, p in before.items() if p not in INITIAL}
            ran = {name for name, p in before.items() if p in INITIAL or p in LOADED_AT}
        except Exception:  # noqa: BLE001
            before, unrun, ran = {}, {}, set()
        result = load_state_dict(self, *args, **kwargs)
        try:
            loaded = []
            for name, parameter in self.named_parameters():
                if before.get(name) is not None and before[name] is not parameter:
                    _hand_over(before[name], parameter)
                elif name in ran and FRESH and (key := _fingerprint(parameter)) in FRESH and key not in SNAPSHOTS \
                        and not _at_start(parameter):
                    # Another fresh model's weights loaded into one that ran: it starts again from a new build (into
                    # one that never ran, they are loaded weights, as below; its own start loaded back is a restore).
                    _new_start(parameter)
                elif name in unrun and not _TENSOR[0].equal(parameter.detach(), unrun[name]):
                    loaded.append(parameter)
                elif _back_at_start(parameter):
                    RESTORED.set(parameter, True)
            # A checkpoint of a model this run trained (its state_dict() then) carries that model's records on, as a
            # deep copy would; other weights (a run resumed from elsewhere, say) leave the model without a start.
            if loaded and not _from_snapshot(loaded):
                for parameter in loaded:
                    LOADED.set(parameter, True)
        except Exception:  # noqa: BLE001
            pass
        return result

    load.__wrapped__ = load_state_dict
    return load


def install(torch) -> None:
    """Register the two global hooks on an imported torch (each only where this torch has it), and pass a
    parameter's recorded start on to its deep copies and to the parameters load_state_dict(assign=True) puts in its
    place."""
    import importlib

    _TENSOR[:] = [torch.Tensor]
    _GRAD[:] = [torch.is_grad_enabled]
    for module, register, hook in (("torch.nn.modules.module", "register_module_forward_pre_hook", _first_forward),
                                   ("torch.optim.optimizer", "register_optimizer_step_pre_hook", _starting),
                                   ("torch.optim.optimizer", "register_optimizer_step_post_hook", _stepped)):
        try:
            getattr(importlib.import_module(module), register)(hook)
        except Exception:  # noqa: BLE001 - a torch without this global hook: that record stays empty
            pass
    parameter = getattr(getattr(torch, "nn", None), "Parameter", None)
    if parameter is not None and callable(getattr(parameter, "__deepcopy__", None)):
        parameter.__deepcopy__ = _inherit_start(parameter.__deepcopy__)
    module = getattr(getattr(torch, "nn", None), "Module", None)
    if module is not None and callable(getattr(module, "load_state_dict", None)):
        module.load_state_dict = _keeping_records(module.load_state_dict)
    if module is not None and callable(getattr(module, "state_dict", None)):
        module.state_dict = _snapshotting(module.state_dict)
    optimizer = getattr(getattr(torch, "optim", None), "Optimizer", None)
    for owner in (module, optimizer):
        if owner is not None and callable(getattr(owner, "zero_grad", None)):
            owner.zero_grad = _clearing_pending(owner.zero_grad)
    try:  # the losses and clipping the notebook calls, looked up on these modules at each call
        functional = importlib.import_module("torch.nn.functional")
        functional.cross_entropy = _noted_loss(functional.cross_entropy)
        for name in OTHER_LOSSES:
            if callable(getattr(functional, name, None)):
                setattr(functional, name, _counted_loss(getattr(functional, name), name))
        functional.nll_loss = _noted_nll(functional.nll_loss)
        utils = importlib.import_module("torch.nn.utils")
        for name in ("clip_grad_norm_", "clip_grad_value_"):
            setattr(utils, name, _noted_clip(getattr(utils, name), by_norm=name == "clip_grad_norm_"))
    except Exception:  # noqa: BLE001
        pass
    try:  # torch's weight averaging: its average holds trained weights that no optimizer stepped
        averaged = importlib.import_module("torch.optim.swa_utils").AveragedModel
        averaged.update_parameters = _averaging(averaged.update_parameters)
    except Exception:  # noqa: BLE001
        pass
    try:  # torch's initialisers, which reset_parameters() calls: a model re-initialised in place starts again
        init = importlib.import_module("torch.nn.init")
        for name, function in list(vars(init).items()):
            if name.endswith("_") and not name.startswith("_") and callable(function):
                setattr(init, name, _reinitialising(function))
    except Exception:  # noqa: BLE001
        pass
    try:  # every scheduler class of torch's that defines its own step(), so the order of the calls is measured
        schedulers = importlib.import_module("torch.optim.lr_scheduler")
        for cls in list(vars(schedulers).values()):
            if not isinstance(cls, type) or not issubclass(cls, schedulers.LRScheduler):
                continue  # the module also holds Optimizer, whose step() is no scheduler's
            if callable(vars(cls).get("step")):
                cls.step = _recorded_step(vars(cls)["step"])
            if callable(vars(cls).get("_initial_step")):
                cls._initial_step = _making(vars(cls)["_initial_step"])
    except Exception:  # noqa: BLE001
        pass


def _model_losses(records) -> dict:
    """The losses and clipping of the steps that trained these parameters; the run's where no torch optimizer
    stepped them (an update written by hand: its losses are the run's, whichever model they trained)."""
    stepped = [r.losses for r in records if r.stepped]
    if not stepped:
        return loss_record()
    combined = None
    for losses in stepped:  # each parameter's steps: a model trained in parts (a frozen layer, say) has them all
        combined = _merged(combined, losses, max) if losses else combined
    return loss_record(combined or _no_losses())


def initial_state(model) -> dict:
    """The recorded initial weights of ``model``, by parameter name (parameters never run are missing)."""
    return {name: INITIAL.get(p) for name, p in model.named_parameters() if p in INITIAL}


def loaded_state(model) -> dict:
    """The weights load_state_dict gave ``model``'s parameters before they first ran, as that first forward pass saw
    them, by parameter name: where a model trained from loaded weights started (parameters not loaded are missing)."""
    return {name: LOADED_AT.get(p) for name, p in model.named_parameters() if p in LOADED_AT}


def _trained_twin(parameter):
    """Another parameter that holds these very weights after steps moved it from its start: the trained original of a
    model saved whole and loaded, or whose tensors were assigned with ``.data =`` or copied with ``copy_()``; None
    where none does."""
    try:
        mine = parameter.detach().cpu()
        for other, record in PARAMETER_STEPS.items():
            if other is not parameter and record.stepped and other.shape == mine.shape and \
                    other.dtype == mine.dtype and _TENSOR[0].equal(other.detach().cpu(), mine) and not _at_start(other):
                return other
    except Exception:  # noqa: BLE001
        pass
    return None


def _adopt_twins(model) -> None:
    """Hand each parameter of ``model`` that no optimizer stepped the record and the start of its trained twin, as a
    deep copy would: its own first forward pass, if any, came after that training, so it is no start of its own."""
    for _, parameter in model.named_parameters():
        twin = None if parameter in PARAMETER_STEPS else _trained_twin(parameter)
        if twin is not None:
            PARAMETER_STEPS.set(parameter, PARAMETER_STEPS.get(twin).copy())
            for table in (INITIAL, LOADED_AT):
                if twin in table:
                    table.set(parameter, table.get(twin))
                else:
                    table.discard(parameter)
            if twin in LOADED:
                LOADED.set(parameter, True)


def training_record(model) -> dict:
    """How optimizers stepped ``model``'s parameters in the current run (``_fresh_start``): ``steps`` by name (with a
    gradient; parameters never stepped are missing), ``idle_steps`` (the most that found one without a gradient),
    ``optimizers`` (their classes), and of the steps judged (``judged_steps``, the most for a parameter) how many used
    a gradient that still held the step before's (``carried_steps``, the most for a parameter); how often a new
    optimizer took over one that kept state for a parameter (``optimizer_restarts``, the most for a parameter);
    whether it was given weights by load_state_dict
    before it first ran (``loaded``: its steps count from there), or given its recorded start back after its last
    step (``restored_to_start``); for its most stepped parameter, the [first, last,
    lowest, highest] LR it was stepped at (``step_lrs``) and its param group's other settings (``step_settings``);
    the lowest and highest value of its input in its first training-mode calls (``input_range``, and each call's,
    ``input_ranges``), and each row's ``row_signatures`` in those calls (``input_rows``); the first row's of a sample
    of its training calls an optimizer step followed, through the whole run (``stepped_rows``); and the run's losses
    and clipping (``loss_calls``, run-wide: the same for every model)."""
    _adopt_twins(model)
    records = {name: PARAMETER_STEPS.get(p) for name, p in model.named_parameters() if p in PARAMETER_STEPS}
    most = max((r for r in records.values() if r.lrs), key=lambda r: r.stepped, default=None)
    fed = INPUTS.get(model)
    return {"steps": {name: r.stepped for name, r in records.items() if r.stepped},
            "idle_steps": max((r.idle for r in records.values()), default=0),
            "optimizers": sorted({c for r in records.values() for c in r.classes}),
            "judged_steps": max((r.cleared + r.carried for r in records.values()), default=0),
            "carried_steps": max((r.carried for r in records.values()), default=0),
            "optimizer_restarts": max((r.restarts for r in records.values()), default=0),
            "loaded": any(p in LOADED for _, p in model.named_parameters()),
            "restored_to_start": any(RESTORED.get(p, False) for _, p in model.named_parameters()),
            "step_lrs": most.lrs if most else None, "step_settings": most.settings if most else None,
            "input_range": fed[1:3] if fed and fed[0] else None, "input_ranges": fed[4] if fed and fed[0] else None,
            "input_rows": [list(r) for r in fed[5]] if fed and fed[0] else None,
            "stepped_rows": _stepped_rows(model), "step_losses": _step_losses(most),
            "loss_calls": _model_losses(records.values())}


def _step_losses(record: _Record | None) -> list | None:
    """Each recorded step's cross_entropy as a number (None where the step had none); None without a record."""
    if record is None or not record.step_count:
        return None
    values = []
    for loss in record.step_losses[:record.step_count]:
        try:
            value = None if loss is None else float(loss)
            values.append(value if value is None or value - value == 0 else None)  # nan and inf: no loss to read
        except Exception:  # noqa: BLE001
            values.append(None)
    return values


def _stepped_rows(model) -> list | None:
    """The signed first rows of ``model``'s training calls an optimizer step followed (``STEPPED_ON``), its latest
    call's included where a step came after it; None where it had no training call."""
    seen = STEPPED_ON.get(model)
    if seen is None:
        return None
    import torch

    _keep_if_stepped(seen)
    if not seen[4] or len({row.shape[1] for row in seen[4]}) > 1:  # inputs of one shape, as a model's batches are
        return []
    return [list(r) for r in row_signatures(torch.cat(seen[4]))]


def after_import(name: str, then) -> None:
    """Call ``then(module)`` right after the first ``import name``, or now if it is already imported."""
    if name in sys.modules:
        then(sys.modules[name])
        return

    class Hook:
        def find_spec(self, fullname, path=None, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            import importlib.util

            spec = importlib.util.find_spec(fullname)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                inner = spec.loader.exec_module

                def exec_module(module):
                    inner(module)
                    then(module)

                spec.loader.exec_module = exec_module  # this spec's own loader instance only
            return spec

    sys.meta_path.insert(0, Hook())


if __name__ == "grader_probe":  # run as the grader's prelude in a kernel; importing this module installs nothing
    after_import("torch", install)
