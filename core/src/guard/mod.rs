//! What the supervisor keeps an eye on beyond "is the process there": a gateway's memory
//! against its limit ([`memory`]), the kernel's OOM kills ([`oom`]), why root restarted a
//! gateway, for its finish to record ([`reason`]), and the pace at which gateways start after
//! a boot ([`pace`]).

pub(crate) mod memory;
pub(crate) mod oom;
pub(crate) mod pace;
pub(crate) mod reason;
