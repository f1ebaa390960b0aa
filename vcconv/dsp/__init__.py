"""Training-free signal processing: the WORLD voice converter (``vcconv convert --model world``)."""
