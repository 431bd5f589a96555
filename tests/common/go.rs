//! Go client programs (tests/go): built once per change, run like the other clients.
