from dlbench.cli import main

# Guarded: a sweep's worker processes (multiprocessing "spawn") import this module again.
if __name__ == "__main__":
    main(prog_name="dlbench")
