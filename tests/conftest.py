import pytest
import torch

# The tests' models are tiny: a second thread only adds synchronisation, which costs
# milliseconds per op on a busy 2-core machine. Subprocesses (training runs) keep the default.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
