from jobfallback.cli import main

main()
