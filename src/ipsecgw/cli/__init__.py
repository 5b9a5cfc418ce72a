"""ipsecgw.cli"""
