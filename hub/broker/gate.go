package broker

import (
	"net"
	"sync"
)

// gatedListener is the broker's net.Listener. It counts the connections
// that were accepted but whose first read has not started yet, so that
// shutdown can wait for them: mochi registers a connection with the server
// (a WaitGroup Add) just before its first read, and that Add must not run
// concurrently with the Wait in the server's Close.
type gatedListener struct {
	net.Listener
	pending sync.WaitGroup

	mu     sync.Mutex // orders pending.Add before drain's Wait
	closed bool
}

func newGatedListener(ln net.Listener) *gatedListener { return &gatedListener{Listener: ln} }

// Accept returns the next connection, counted as pending until its first
// read or its close.
func (g *gatedListener) Accept() (net.Conn, error) {
	c, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		// Accepted as the listener closed: the broker is shutting down.
		c.Close()
		return nil, net.ErrClosed
	}
	g.pending.Add(1)
	return &gatedConn{Conn: c, done: g.pending.Done}, nil
}

// drain closes the listener, so nothing new is accepted, and waits until
// every accepted connection has been taken up by the server.
func (g *gatedListener) drain() {
	g.mu.Lock()
	g.closed = true
	g.Listener.Close()
	g.mu.Unlock()
	g.pending.Wait()
}

// gatedConn reports once that the server has taken it up: at its first read
// or when it is closed before that.
type gatedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.once.Do(c.done)
	return c.Conn.Read(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}
