pub mod usage_event;
