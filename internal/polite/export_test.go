package polite

// CheckAllowRangesIn is checkAllowRanges, for the external tests.
var CheckAllowRangesIn = checkAllowRanges
