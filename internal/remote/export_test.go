package remote

// NastyWords is the quoting corpus (the seeds of FuzzQuote), for the
// transport tests in package remote_test.
var NastyWords = nastyWords
