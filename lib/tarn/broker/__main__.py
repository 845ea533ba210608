from tarn.broker._server import main

main()
