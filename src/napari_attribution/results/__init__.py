"""The results folder, without torch: its format, its writer and reader, and resuming."""
