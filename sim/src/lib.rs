//! Placeholder until the simulator lands (issue 3).
