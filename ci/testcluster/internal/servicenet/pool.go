package servicenet

import "sync"

// AddressPool hands out the addresses of a block (addr(n), n from 0, until
// addr answers false) to owners, the lowest free first, so load-balancer
// Services and other users of the block (the gateway stand-in) never share
// one.
type AddressPool struct {
	addr func(n int) (string, bool)

	mu     sync.Mutex
	owners map[int]string // n -> owner
}

// NewAddressPool hands out the addresses addr gives.
func NewAddressPool(addr func(n int) (string, bool)) *AddressPool {
	return &AddressPool{addr: addr, owners: map[int]string{}}
}

// inUseElsewhere owns addresses the machine already uses (usable said no).
const inUseElsewhere = "\x00in use on this machine"

// Take gives owner the lowest free address for which usable (nil: any)
// answers true; addresses it refuses stay taken. False: none left.
func (p *AddressPool) Take(owner string, usable func(ip string) bool) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := 0; ; n++ {
		if _, taken := p.owners[n]; taken {
			continue
		}
		ip, ok := p.addr(n)
		if !ok {
			return "", false
		}
		if usable != nil && !usable(ip) {
			p.owners[n] = inUseElsewhere
			continue
		}
		p.owners[n] = owner
		return ip, true
	}
}

// Release gives back the addresses of owner.
func (p *AddressPool) Release(owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, o := range p.owners {
		if o == owner {
			delete(p.owners, n)
		}
	}
}
