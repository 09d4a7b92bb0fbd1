package polite

// CheckAllowRangesIn is checkAllowRanges, for the external tests.
var CheckAllowRangesIn = checkAllowRanges

// Kept returns how many addresses and networks s keeps (forget), for the external tests.
func (s *Scheduler) Kept() (addrs, nets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.addrs), len(s.nets)
}
