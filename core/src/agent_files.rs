//! The files hermes-agent's gateway and hermes-s6 share: their names and how to read them (what a stand-in gateway writes as the real one does).
//!
//! These are upstream's contract, not our internals: the gateway writes its state and
//! lifecycle records under its profile, our `stop` leaves the planned-stop marker there, and
//! both take the slot's operation lock. Named here once so that a gateway of our own (the
//! stand-in in `front/`) cannot drift from what the library reads.

pub use crate::slot::LOCK_FILE as SLOT_LOCK_FILE;
pub use crate::volume::marker::{process_start_time, MARKER_FILE, MARKER_TTL_SECS};
pub use crate::volume::ports::{parse_dotenv, DOTENV_FILE, RECORD_FILE as PORTS_RECORD_FILE};
pub use crate::volume::state::{read_json_object, LIFECYCLE_FILE, STATE_FILE, STATE_SUBDIR};
