"""prompt-env: prompt optimization as reinforcement learning."""
