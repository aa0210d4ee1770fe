"""Running graphs: profiles to launch descriptions, the single-process bringup, the
lifecycle manager, the monitor and bag tools. Imports nodes; nothing imports it."""
