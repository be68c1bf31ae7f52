"""`coda eval`: HumanEval, HumanEval-infilling, MBPP and EvalPlus tasks, run in a real sandbox."""
