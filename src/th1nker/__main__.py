from th1nker.cli import main

main()
