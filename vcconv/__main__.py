from vcconv.cli import main

main()
