"""One virtual router = one thread (``worker``): its capture and state machine,
the effects of its actions (``effects``), its conflict checker (``conflict``, on
the same thread), its transition scripts (``hooks``) and its status record
(``status``)."""
