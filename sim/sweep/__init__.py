"""Many runs: experiments, their engines, the results folder and progress."""
