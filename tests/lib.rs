//! The integration tests of paasm live in `integration/`; this library is empty so that the
//! package has a target besides its one test binary.
