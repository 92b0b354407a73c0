// Carrier of the precompiled torch header shared by every target.
