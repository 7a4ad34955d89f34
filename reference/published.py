"""The unit's printed outputs (seed 003), transcribed as data for comparison.

``PORTABLE`` marks the figures that any CPU reproduces to every printed digit.
The others come from long or high-LR runs whose float rounding differs between CPU
kernel paths: on this project's machines they match up to a point and then drift.
For example, the overfitting sweep matches through epoch 250, and the StepLR demo
(Adam at 0.1) matches epoch 1 and every LR, but not the losses after epoch 1.
``python -m reference <name>`` prints, for each figure, whether it was reproduced.
"""

from __future__ import annotations

NOISE_SWEEP = {
    0.1: ["Epoch  10/20 | Loss: 0.7559 | Accuracy: 100.00%", "Epoch  20/20 | Loss: 0.0130 | Accuracy: 100.00%"],
    0.3: ["Epoch  10/20 | Loss: 3.2397 | Accuracy: 74.44%", "Epoch  20/20 | Loss: 2.2064 | Accuracy: 84.44%"],
    0.5: ["Epoch  10/20 | Loss: 4.8366 | Accuracy: 59.44%", "Epoch  20/20 | Loss: 4.2484 | Accuracy: 68.89%"],
}

OVERFITTING_500 = [
    "Epoch  50/500 | Loss: 3.6963 | Accuracy: 71.67%",
    "Epoch 100/500 | Loss: 3.4732 | Accuracy: 71.11%",
    "Epoch 150/500 | Loss: 3.6123 | Accuracy: 72.22%",
    "Epoch 200/500 | Loss: 3.3034 | Accuracy: 76.67%",
    "Epoch 250/500 | Loss: 3.1063 | Accuracy: 75.00%",
    "Epoch 300/500 | Loss: 3.1169 | Accuracy: 76.11%",
    "Epoch 350/500 | Loss: 2.8609 | Accuracy: 78.89%",
    "Epoch 400/500 | Loss: 2.8409 | Accuracy: 78.89%",
    "Epoch 450/500 | Loss: 2.5242 | Accuracy: 81.11%",
    "Epoch 500/500 | Loss: 2.4989 | Accuracy: 80.56%",
]
# Eval-mode accuracy of the 500-epoch model on its training set and two fresh test sets.
OVERFITTING_GENERALISATION = {"Training Set": 83.89, "Test Set 1": 51.11, "Test Set 2": 58.33}

EARLY_STOPPING = [
    "Ep   1/500 | T-L: 6.6633 | T-A: 33.89% | LR: 0.01 | V-L: 6.5684 | V-A: 40.00%",
    "Ep  10/500 | T-L: 4.7466 | T-A: 58.89% | LR: 0.01 | V-L: 6.0109 | V-A: 50.56%",
    "Ep  20/500 | T-L: 4.2570 | T-A: 65.00% | LR: 0.01 | V-L: 5.9405 | V-A: 55.56%",
    "Ep  30/500 | T-L: 4.2679 | T-A: 71.67% | LR: 0.01 | V-L: 6.1368 | V-A: 58.33%",
    "Early stopping triggered at epoch 33.",
]
# The unit's summary of the restored model, evaluated in eval mode.
EARLY_STOPPING_RESTORED = {"train": 64.44, "val": 53.33, "test": 63.33}

STEPLR_DEMO = [
    "Ep   1/200 | T-L: 20.3090 | T-A: 51.94% | LR: 0.1",
    "Ep  25/200 | T-L: 10.6104 | T-A: 82.50% | LR: 0.07",
    "Ep  50/200 | T-L: 8.8696 | T-A: 86.11% | LR: 0.049",
    "Ep  75/200 | T-L: 8.3115 | T-A: 87.22% | LR: 0.0343",
    "Ep 100/200 | T-L: 6.9336 | T-A: 89.31% | LR: 0.02401",
    "Ep 125/200 | T-L: 6.6150 | T-A: 89.58% | LR: 0.016807",
    "Ep 150/200 | T-L: 7.1327 | T-A: 88.75% | LR: 0.011765",
    "Ep 175/200 | T-L: 6.1093 | T-A: 90.14% | LR: 0.0082354",
    "Ep 200/200 | T-L: 6.1407 | T-A: 89.72% | LR: 0.0057648",
]
STEPLR_LR_COLUMN = [line.rsplit("LR: ", 1)[1] for line in STEPLR_DEMO]

MANUAL_STEPLR = [
    "Initial LR:    LR = 0.1",
    "After epoch 1: LR = 0.05",
    "After epoch 2: LR = 0.025",
    "After epoch 3: LR = 0.0125",
    "After epoch 4: LR = 0.00625",
    "After epoch 5: LR = 0.003125",
]

TINY_MODEL = [
    "Epoch   1/50 | Train Loss: 13.6106 | Train Acc:  33.33% | LR: 0.01",
    "Epoch  10/50 | Train Loss: 10.6261 | Train Acc:  55.56% | LR: 0.01",
    "Epoch  20/50 | Train Loss:  6.7651 | Train Acc:  70.56% | LR: 0.01",
    "Epoch  30/50 | Train Loss:  4.5263 | Train Acc:  88.89% | LR: 0.01",
    "Epoch  40/50 | Train Loss:  3.3970 | Train Acc: 100.00% | LR: 0.01",
    "Epoch  50/50 | Train Loss:  2.6591 | Train Acc: 100.00% | LR: 0.01",
]
TINY_MODEL_PARAMS = 33

RANDOM_SEEDS = {
    0: "Seed 0: Best Epoch=13, TL=4.5647, TA=62.22%, VL=5.7290, VA=53.33%, TestL=4.9002, TestA=63.33%",
    3: "Seed 3: Best Epoch=27, TL=4.1843, TA=69.44%, VL=5.8092, VA=57.78%, TestL=4.7724, TestA=66.67%",
    18: "Seed 18: Best Epoch=9, TL=4.9902, TA=59.44%, VL=5.6355, VA=48.89%, TestL=4.9570, TestA=58.33%",
}
