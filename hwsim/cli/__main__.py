from hwsim.cli import main

main()
