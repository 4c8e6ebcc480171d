"""GPU planning: how many GPUs of which product a Model needs (planner), the model's size facts
(Hugging Face metadata) and the nodes' GPU inventory."""
