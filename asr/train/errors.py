"""The trainer's one error type for what a user can fix (`asr train` prints it as one line)."""


class TrainingError(RuntimeError):
    """Training cannot go on: a bad set-up, a busy experiment, or a run that diverged."""
