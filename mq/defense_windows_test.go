package mq_test

// runEMFILEChild: the EMFILE test (defense_test.go) needs RLIMIT_NOFILE, which Windows lacks; tide does not run on
// Windows (WSL2 is the way), this only keeps `GOOS=windows go vet` compiling.
func runEMFILEChild(string) {}
