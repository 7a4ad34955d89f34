"""Runs INSIDE a kernel that waits for its notebook (watch mode): pays this process's first-call costs.

A kernel forked from the factory shares torch's pages with it; its first training step and its first
``torch.export`` still fault in and write what they touch (copy-on-write): 25 to 50 ms more for the
export alone. A kernel that waits for the student's save does that here instead, on a throwaway
model, so the save costs only the notebook's own cells. Executed silently (no history, no
``post_run_cell``), in a namespace of its own, with the probe's recording off and torch's random
state put back, so the notebook sees nothing of it. Standard library and torch only.
"""


def warm(probe: dict, export: dict, models: bool) -> None:
    import torch

    recording = probe.get("RECORDING", [True])
    recording[0] = False
    try:
        with torch.random.fork_rng(devices=[]):
            model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            loss = torch.nn.functional.cross_entropy(model(torch.zeros(4, 2)), torch.zeros(4, dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if models and "_capture" in export:
                model.eval()
                with torch.no_grad():
                    export["_capture"](model, torch.zeros(2, 2))
    finally:
        recording[0] = True
