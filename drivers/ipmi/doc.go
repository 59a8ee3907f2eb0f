// Package ipmi is Ferric's IPMI driver: power and boot device control of a
// node's BMC over IPMI 2.0 LAN (RMCP+, what ipmitool calls "lanplus"),
// using the pure Go client github.com/bougou/go-ipmi (pkg/client).
// No ipmitool binary is needed at run time.
//
// # driver_info
//
//	ipmi_address       required  BMC host name or IP address, without a port
//	ipmi_port          623       UDP port, 1-65535
//	ipmi_username      ""        user name, at most 16 bytes ("" = anonymous)
//	ipmi_password      ""        password, at most 20 bytes; never in errors
//	ipmi_cipher_suite  3         RMCP+ cipher suite, 1-19 (3 = SHA1/AES,
//	                             17 = SHA256/AES); 0 (no authentication) is refused
//	ipmi_priv_level    ADMINISTRATOR  ADMINISTRATOR, OPERATOR or USER
//	ipmi_timeout       5s        how long one request waits for the reply
//	                             before a retry; "1500ms" or seconds; max 60s
//	ipmi_retries       2         retries of a request whose reply timed out, 0-10
//	ipmi_boot_mode     uefi      boot mode sent with the boot device: uefi or bios
//
// Numbers may be JSON numbers or numeric strings. ValidateInfo checks all
// keys without touching the network; every operation validates again.
//
// # Behaviour
//
// Power: PowerState uses Get Chassis Status. Every SetPowerState action
// reads the state first, so reaching the current state sends nothing
// ("power on" when on succeeds). "power on"/"power off" send Chassis
// Control power up/down and return once the BMC accepted them. "rebooting"
// sends a hard reset when the node is on and power up when it is off.
// "soft power off" sends a soft shutdown (ACPI power button) and polls the
// state every 2 s until the node is off; if it is still on after the
// timeout (zero: DefaultSoftTimeout, 10 min, as Ironic), it is an error and
// the node is not forced off. "soft rebooting" is a soft power off as
// above, then power up.
//
// Boot device: pxe, disk, cdrom and bios, next boot only or persistent, in
// UEFI or legacy mode per ipmi_boot_mode. SetBootDevice first asks the BMC
// to keep the boot flags past IPMI's 60-second validity timeout (as Ironic
// does; ignored when the BMC refuses the parameter), then writes the boot
// flags. Other devices (safe, uefihttp, ...) fail with an error wrapping
// drivers.ErrNotSupported before any network traffic. BootDevice reads the
// boot flags back; "" means the BMC holds no override. Some BMCs, ipmi_sim
// among them, do not keep the persistent bit and always report false.
//
// Errors name the operation, the node (drivers.Node.Label) and the BMC
// address, are one line, and never contain the password. A BMC that
// rejects the user name, password or privilege level gives an error
// wrapping ErrAuthentication.
//
// # Sessions and timeouts
//
// Each operation opens its own RMCP+ session, uses it and closes it (Close
// Session, bounded to 2 s). Conductor operations are seconds to minutes
// apart, so a session cache would save a few round trips (about 5 ms
// against ipmi_sim) at the cost of handling stale sessions (BMC inactivity
// timeouts, BMC reboots, changed credentials) and of go-ipmi's keep-alive
// goroutine per cached session. Soft power off polls with a short session
// per check rather than holding one open for minutes. At most 2 sessions
// per BMC are open at once from one driver; further callers wait (honouring
// their context), because BMCs have few session slots, shared with other
// tools.
//
// The context's deadline bounds everything, including DNS. go-ipmi honours
// the context in its exchanges but reads the UDP socket in a goroutine that
// holds a lock until its read deadline, even after the call returned. The
// driver therefore owns the socket (handed to go-ipmi through its UDP
// "proxy" dialer): when the context ends, or the operation finishes, the
// driver closes the socket, which ends any pending read at once, and waits
// until no Read or Write on it is in progress before returning. A hung BMC
// cannot hold a caller past its deadline, and no goroutine of an operation
// outlives it. Without a deadline, ipmi_timeout x (ipmi_retries + 1) bounds
// each request.
//
// # Tests
//
// Tests run against OpenIPMI's ipmi_sim (Debian package openipmi) through
// the helper package ipmisim: each test starts its own simulator on a free
// UDP port on 127.0.0.1 with fresh temporary state, and reads the
// simulator's chassis state files (power, boot, resets, calls.log) to prove
// effects. Without ipmi_sim those tests are skipped, unless the environment
// variable CI is set, which makes them fail. Faults are injected with a UDP
// socket that never answers (hung BMC), a closed port (nothing listening),
// the simulator's hang and ignore_shutdown files, wrong credentials and a
// USER-privilege account. go-ipmi's in-process reference BMC checks the
// boot flag bits (persistent, EFI) that ipmi_sim does not keep.
//
//	go test -race ./drivers/ipmi/...
package ipmi
