from dlbench.cli import main

main(prog_name="dlbench")
