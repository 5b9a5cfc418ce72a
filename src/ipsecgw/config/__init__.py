"""ipsecgw.config"""
