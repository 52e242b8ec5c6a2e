"""Offline CA setup, used by the ``acmegate ca`` commands only (never by the running signer).

- :mod:`.create`: ``ca init`` (a root and an issuing CA) and ``ca import`` (adopt one);
- :mod:`.csr`: ``ca csr`` / ``ca install`` (an issuing CA signed by an enterprise root);
- :mod:`.report`: ``ca list`` (each configured CA, what is wrong with it);
- :mod:`.keygen`: new keys (in memory or in a PKCS#11 token) and CA subjects;
- :mod:`.files`: what setup writes and reads, and the configuration entry for it.
"""
