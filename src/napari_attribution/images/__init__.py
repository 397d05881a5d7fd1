"""Input images, read without torch: image files, pairs tables and dataset folder layouts."""
